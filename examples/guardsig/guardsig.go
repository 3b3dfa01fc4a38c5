// Package guardsig verifies that a request came through the ingress guard
// (ORIGIN_SIGNING_SECRET; README "Signed origin"). Standard library only. In a handler:
//
//	seen := guardsig.NewSeenRequests(100_000, guardsig.DefaultWindow)
//	check := guardsig.Verify(r.Method, r.URL.RequestURI(), r.Header,
//		guardsig.Options{Secrets: []string{os.Getenv("ORIGIN_SIGNING_SECRET")}, Seen: seen})
//	if !check.OK { http.Error(w, check.Reason, http.StatusUnauthorized); return }
//
// path is the path and query exactly as received (r.URL.RequestURI(), or r.RequestURI).
package guardsig

import (
	"container/list"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultWindow is how far a signature's timestamp may be from the origin's clock, either way.
const DefaultWindow = 60 * time.Second

var (
	signaturePattern = regexp.MustCompile(`^v1=([0-9a-f]{64})$`)
	timestampPattern = regexp.MustCompile(`^[0-9]{1,16}$`)
)

// Options: Secrets (one or more: during a rotation both), Now (default time.Now), Window
// (default DefaultWindow), Seen (without it replays are not caught).
type Options struct {
	Secrets []string
	Now     time.Time
	Window  time.Duration
	Seen    *SeenRequests
}

// Result of Verify: OK, or Reason (unsigned, bad_timestamp, bad_signature, stale, replayed).
type Result struct {
	OK        bool   `json:"ok"`
	Reason    string `json:"reason,omitempty"`
	Tenant    string `json:"tenant,omitempty"`
	Priority  string `json:"priority,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Deadline  int64  `json:"deadline,omitempty"`
}

// CanonicalString is what the guard signed (src/proxy/origin-signature.ts): one field per line.
func CanonicalString(timestamp, requestID, tenant, priority, deadline, method, path string) string {
	return strings.Join([]string{"v1", timestamp, requestID, tenant, priority, deadline, method, path}, "\n")
}

func single(header http.Header, name string) (string, bool) {
	values := header.Values(name)
	if len(values) != 1 {
		return "", false
	}
	return values[0], true
}

// Verify checks the guard's signature, its timestamp window and (with Seen) replays.
func Verify(method, path string, header http.Header, opts Options) Result {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	window := opts.Window
	if window == 0 {
		window = DefaultWindow
	}
	names := []string{"x-guard-timestamp", "x-guard-request-id", "x-guard-tenant", "x-guard-priority", "x-request-deadline", "x-guard-signature"}
	values := make([]string, len(names))
	for i, name := range names {
		value, ok := single(header, name)
		if !ok {
			return Result{Reason: "unsigned"}
		}
		values[i] = value
	}
	signature := signaturePattern.FindStringSubmatch(values[5])
	if signature == nil {
		return Result{Reason: "unsigned"}
	}
	if !timestampPattern.MatchString(values[0]) {
		return Result{Reason: "bad_timestamp"}
	}
	given, _ := hex.DecodeString(signature[1])
	payload := []byte(CanonicalString(values[0], values[1], values[2], values[3], values[4], method, path))
	valid := false
	for _, secret := range opts.Secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(payload)
		valid = hmac.Equal(mac.Sum(nil), given) || valid
	}
	if !valid {
		return Result{Reason: "bad_signature"}
	}
	at, _ := strconv.ParseInt(values[0], 10, 64)
	nowMs := now.UnixMilli()
	if diff := nowMs - at; diff > window.Milliseconds() || -diff > window.Milliseconds() {
		return Result{Reason: "stale"}
	}
	if opts.Seen != nil && !opts.Seen.Remember(values[1], at, nowMs) {
		return Result{Reason: "replayed"}
	}
	deadline, _ := strconv.ParseInt(values[4], 10, 64)
	return Result{OK: true, Tenant: values[2], Priority: values[3], RequestID: values[1], Deadline: deadline}
}

// SeenRequests holds the request ids seen inside the window, bounded: when full, the oldest is
// forgotten and every timestamp up to its own is refused from then on, so a forgotten id can
// never be replayed. Safe for concurrent use.
type SeenRequests struct {
	mu         sync.Mutex
	maxEntries int
	windowMs   int64
	order      *list.List
	ids        map[string]*list.Element
	floor      int64
}

type seenEntry struct {
	id string
	at int64
}

// NewSeenRequests makes a cache of at most maxEntries ids.
func NewSeenRequests(maxEntries int, window time.Duration) *SeenRequests {
	return &SeenRequests{maxEntries: maxEntries, windowMs: window.Milliseconds(), order: list.New(), ids: map[string]*list.Element{}}
}

// Remember is false when id was seen (or may have been); otherwise it remembers it.
func (s *SeenRequests) Remember(id string, at, nowMs int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for front := s.order.Front(); front != nil && front.Value.(seenEntry).at < nowMs-s.windowMs; front = s.order.Front() {
		delete(s.ids, front.Value.(seenEntry).id)
		s.order.Remove(front)
	}
	if _, dup := s.ids[id]; dup || at <= s.floor {
		return false
	}
	if s.order.Len() >= s.maxEntries {
		oldest := s.order.Remove(s.order.Front()).(seenEntry)
		delete(s.ids, oldest.id)
		if oldest.at > s.floor {
			s.floor = oldest.at
		}
		if at <= s.floor {
			return false
		}
	}
	s.ids[id] = s.order.PushBack(seenEntry{id, at})
	return true
}

module guardsig

go 1.19

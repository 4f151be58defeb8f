package main

// version is stamped at build time, as the Dockerfile does from its VERSION
// build argument: -ldflags "-X main.version=v1.2.3". A plain go build says
// "dev".
var version = "dev"

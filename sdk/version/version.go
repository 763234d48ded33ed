// Package version holds the build version of Azaion Edge binaries. It may be
// imported by the daemon, the plugins and client programs alike.
package version

// Version is the release version, overridden at link time with
// -ldflags "-X github.com/azaion/edge/sdk/version.Version=...".
var Version = "0.1.0-dev"

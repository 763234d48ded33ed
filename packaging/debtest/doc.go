// Package debtest tests the .deb packages that `make deb` builds into dist/:
// their contents and control fields, lintian, the systemd unit
// (systemd-analyze), the arm64 daemon and plugin under qemu, and install,
// upgrade, remove and purge in a fresh Debian 12 root (debootstrap, cached by
// `make deps`) under an overlay in a private mount and PID namespace, so
// nothing leaks when a test fails. It needs root; `make test` runs it.
package debtest

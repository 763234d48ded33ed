// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) without libsystemd: it tells the service manager when the
// daemon is ready (Type=notify), when it is stopping, and keeps the watchdog
// (WatchdogSec=) fed while the daemon is healthy. Outside systemd (no
// $NOTIFY_SOCKET) every call does nothing. It is imported only by the daemon.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Messages the daemon sends (see sd_notify(3)).
const (
	// Ready says start-up is finished: the listeners accept connections.
	Ready = "READY=1"
	// Stopping says the daemon is draining after SIGTERM.
	Stopping = "STOPPING=1"
	// Watchdog is the keep-alive ping.
	Watchdog = "WATCHDOG=1"
)

// Notify sends one notification (one or more newline-separated
// VARIABLE=value assignments) to the socket named by $NOTIFY_SOCKET. It
// returns (false, nil) when the variable is unset, that is when the daemon
// does not run under systemd's Type=notify.
func Notify(state string) (bool, error) {
	return notify(os.Getenv("NOTIFY_SOCKET"), state)
}

func notify(socket, state string) (bool, error) {
	if socket == "" {
		return false, nil
	}
	if socket[0] != '/' && socket[0] != '@' {
		return false, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is not a path or an abstract socket name", socket)
	}
	// "@name" is a Linux abstract socket; Go spells its address with a leading "@" too.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	return true, nil
}

// WatchdogInterval returns the keep-alive period systemd asked for
// ($WATCHDOG_USEC, for this process when $WATCHDOG_PID is set), or 0 when
// the watchdog is off. Pings should come at least twice per interval.
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID %q is not a number", pid)
		}
		if p != self {
			return 0, nil // meant for another process
		}
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q is not a positive number", usec)
	}
	return time.Duration(n) * time.Microsecond, nil
}

// KeepAlive pings the watchdog every half interval until ctx ends, as long as
// healthy returns nil; a failing or stuck check withholds the ping, so
// systemd restarts a daemon that stopped making progress. It returns at once
// when the watchdog is off, and otherwise when ctx ends; a ping that cannot
// be sent is retried at the next tick (errors, if any, go to onErr).
func KeepAlive(ctx context.Context, healthy func(context.Context) error, onErr func(error)) error {
	every, err := WatchdogInterval()
	if err != nil || every == 0 {
		return err
	}
	keepAlive(ctx, every/2, healthy, Notify, onErr)
	return nil
}

func keepAlive(ctx context.Context, every time.Duration, healthy func(context.Context) error, send func(string) (bool, error), onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		err := error(nil)
		if healthy != nil {
			err = healthy(ctx)
		}
		if err == nil {
			_, err = send(Watchdog)
		}
		if err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

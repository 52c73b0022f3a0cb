// Package sshrelay is the gateway's SSH client for browser sessions: it
// dials an SSH host with the credentials the gateway holds (Dial), runs an
// interactive shell for an xterm.js terminal in the page (Client.Terminal)
// and moves files over SFTP with the resource's direction policy enforced
// by the gateway (Client.Files).
//
// It owns the SSH connection, its host-key check and the terminal wire
// protocol described below. It must not touch tickets, user accounts,
// policy resolution or storage: the caller decides the credentials, the
// pinned host key and the effective config.Transfer, stores a fingerprint
// reported on first use, and owns the browser WebSocket (upgrade, limits,
// closing).
//
// # Terminal wire protocol
//
// Over the browser WebSocket:
//
//   - Binary messages carry terminal bytes in both directions: keystrokes
//     from the browser go to the shell's stdin, shell output goes to the
//     browser. The bytes pass through untouched, so UTF-8 arrives as sent.
//     Output is coalesced into messages of at most 32 KiB.
//   - Text messages from the browser are JSON control messages. The only
//     one is {"type":"resize","cols":N,"rows":N} with 1 <= N <= 1000.
//     A malformed or unknown control message is logged and ignored.
//   - When the remote shell exits the gateway sends one text message
//     {"type":"exit","status":N} and the session ends. N is the shell's
//     exit status, 128+signal number when it was killed by a signal, and
//     -1 when the host reported no status.
//
// The terminal is a PTY of type xterm-256color with LANG=C.UTF-8 (when
// the host accepts the variable) running the user's login shell.
package sshrelay

package main

import "syscall"

// benchChildAttr makes the kernel kill a benchmark's child process when
// the process that started it dies, so an interrupted or crashed suite
// leaves no broker (or JVM) behind even when it could not stop them.
func benchChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

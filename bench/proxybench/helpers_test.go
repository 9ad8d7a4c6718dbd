package main

import (
	"os"
	"strconv"
	"testing"

	"github.com/false-systems/rauta/bench/internal/procfs"
)

func itoa(i int) string { return strconv.Itoa(i) }

func pgidOf(t *testing.T, pid int) int {
	t.Helper()
	st, err := procfs.ReadStat(pid)
	if os.IsNotExist(err) {
		t.Skipf("no /proc (not Linux?): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Pgrp
}

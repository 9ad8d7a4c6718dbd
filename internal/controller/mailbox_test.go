package controller

import (
	"context"
	"testing"
	"time"

	"github.com/false-systems/rauta/internal/translate"
)

func TestMailboxKeepsOnlyTheNewest(t *testing.T) {
	m := newMailbox()
	first, second := &translate.Status{}, &translate.Status{}
	m.put(statusJob{status: first})
	m.put(statusJob{status: second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	j, ok := m.take(ctx)
	if !ok || j.status != second {
		t.Fatalf("take = %p, %v; want the newest job %p", j.status, ok, second)
	}
	// Nothing is left: the superseded job was dropped.
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if _, ok := m.take(short); ok {
		t.Fatal("a superseded job was delivered")
	}
}

func TestMailboxTakeWaitsForPut(t *testing.T) {
	m := newMailbox()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	want := &translate.Status{}
	go func() {
		time.Sleep(10 * time.Millisecond)
		m.put(statusJob{status: want})
	}()
	j, ok := m.take(ctx)
	if !ok || j.status != want {
		t.Fatalf("take = %p, %v; want %p", j.status, ok, want)
	}
}

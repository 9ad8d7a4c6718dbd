//go:build race

package proxy

// raceEnabled: the race detector is on, and sync.Pool drops a share of
// what is put back on purpose, so allocation counts are not the engine's.
const raceEnabled = true

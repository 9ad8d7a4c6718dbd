// Command imageserver is the program of the node agent's image test: it serves what it
// sees of its own process (user, groups, argv, env, working folder) and the files of its
// root, so the test can check them from the host. The test builds it (standard library
// only, in a module of its own) into an OCI image.
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"time"
)

type whoami struct {
	UID, GID int
	Groups   []int
	Args     []string
	Env      map[string]string
	Cwd      string
}

func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	http.HandleFunc("/whoami", func(w http.ResponseWriter, _ *http.Request) {
		groups, _ := os.Getgroups()
		cwd, _ := os.Getwd()
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		_ = json.NewEncoder(w).Encode(whoami{UID: os.Getuid(), GID: os.Getgid(), Groups: groups, Args: os.Args, Env: env, Cwd: cwd})
	})
	http.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	})
	srv := &http.Server{Addr: ":8080", ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}

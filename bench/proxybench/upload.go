package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The upload cell: HTTP/1.1 keep-alive POSTs of a 100,000-byte body, which
// the backend reads whole before it answers. 100 KB is more than any
// contender reads at once, so a body crosses in pieces; 16 connections keep
// one proxy worker busy with 1.6 MB of bodies in flight, where 64 would
// measure queues in socket buffers.
const (
	uploadPath   = "/upload"
	uploadAnswer = "ok\n"
	uploadSize   = 100000
	uploadConns  = 16
)

var uploadCell = cell{Proto: "h1", Conns: uploadConns, Upload: uploadSize}

// uploadBody is the body the checker sends: size bytes of digits.
func uploadBody(size int) []byte {
	return append(bytes.Repeat([]byte("0123456789"), size/10), bytes.Repeat([]byte("x"), size%10)...)
}

// uploadScript makes wrk POST a body of size bytes on every request and
// print the same summary as wrkScript. The request is static: wrk builds
// it once with wrk.format, which adds Content-Length, so there is no
// per-request Lua.
func uploadScript(size int) string {
	return fmt.Sprintf(`wrk.method = "POST"
wrk.body = string.rep("0123456789", %d) .. string.rep("x", %d)
wrk.headers["Content-Type"] = "application/octet-stream"
`, size/10, size%10) + wrkScript
}

// backendUploadLocations make an nginx endpoint read a whole upload before
// it answers. "return 200" alone would answer at once and discard the body
// as it arrives, so a proxy would get the answer in the middle of sending
// the body. The mirror module reads the body first (into a buffer large
// enough that it never goes to a temp file); the location has no file,
// and error_page turns the 404 into @upload's 200.
func backendUploadLocations() string {
	return fmt.Sprintf(`    location = %[1]s {
      client_max_body_size 1m;
      client_body_buffer_size 128k;
      mirror /upload-read;
      mirror_request_body on;
      log_not_found off;
      error_page 404 =200 @upload;
    }
    location = /upload-read { internal; return 204; }
    location @upload { return 200 %[2]q; }
`, uploadPath, uploadAnswer)
}

// upload POSTs a body of size bytes to url over HTTP/1.1 and checks the
// answer. It returns the X-Backend header, like get.
func (c *checker) upload(ctx context.Context, url string, size int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(uploadBody(size)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.h1.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return "", fmt.Errorf("POST %s: read answer: %w", url, err)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("POST %s of %d bytes: status %d, want 200", url, size, resp.StatusCode)
	case string(body) != uploadAnswer:
		return "", fmt.Errorf("POST %s: answer %q, want %q", url, strings.TrimSpace(string(body)), uploadAnswer)
	}
	return resp.Header.Get("X-Backend"), nil
}

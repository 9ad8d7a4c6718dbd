package tracecontext

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// PostOTLP sends one encoded OTLP/HTTP protobuf export request to url,
// waiting at most timeout, and reads at most 64 KiB of the answer: the
// gateway's and the observer's span exporters both send this way.
func PostOTLP(client *http.Client, url string, timeout time.Duration, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

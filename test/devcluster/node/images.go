package node

import (
	"fmt"
	"strings"
)

// imageRepository strips the digest ("@sha256:...") and the tag (":v1") from an image
// reference. A colon before the last slash belongs to a registry port, not a tag.
func imageRepository(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 && i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// resolveImage returns the mapping an image runs from: a local binary or an OCI layout.
func resolveImage(mappings []ImageMapping, image string) (ImageMapping, error) {
	if image == "" {
		return ImageMapping{}, fmt.Errorf("empty image")
	}
	repo := imageRepository(image)
	for _, m := range mappings {
		if m.Repository == repo {
			return m, nil
		}
	}
	known := make([]string, 0, len(mappings))
	for _, m := range mappings {
		known = append(known, m.Repository)
	}
	return ImageMapping{}, fmt.Errorf("image %q has no local binary or image layout on this node (known repositories: %s)", image, strings.Join(known, ", "))
}

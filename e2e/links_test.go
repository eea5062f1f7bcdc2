package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// knownBrokenLinks are relative links that point at nothing, each with
// why it is tolerated for now. Remove an entry when its link is fixed.
var knownBrokenLinks = map[string]string{}

// TestDocLinksStayInTheRepository follows every relative Markdown link in
// the documents (README.md, docs/*.md): each must
// name a file or directory of this repository, since a clone has nothing
// beside it (the seed document once was linked as ../shared/seed).
func TestDocLinksStayInTheRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, doc := range []string{"README.md", "docs/SEED.md", "docs/DESIGN.md", "docs/PERFORMANCE.md", "docs/SIMULATOR.md", "docs/SECURITY.md"} {
		b, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || seen[target] {
				continue
			}
			seen[target] = true
			key := doc + " -> " + target
			if _, ok := knownBrokenLinks[key]; ok {
				continue
			}
			path := filepath.Join(root, filepath.Dir(doc), target)
			if rel, err := filepath.Rel(root, path); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				t.Errorf("%s links to %s, outside the repository: a clone does not have it", doc, m[1])
				continue
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s links to %s, which does not exist in the repository", doc, m[1])
			}
		}
	}
	if _, err := os.Stat(filepath.Join(root, "docs", "SEED.zh.txt")); err != nil {
		t.Errorf("docs/SEED.md says the original is docs/SEED.zh.txt: %v", err)
	}
}

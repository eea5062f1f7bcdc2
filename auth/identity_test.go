package auth

import (
	"errors"
	"net/url"
	"testing"
)

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Identity
		err  bool
	}{
		{"spiffe://gossip/node/a", NodeID("gossip", "a"), false},
		{"spiffe://Prod.Example/client/ops-1", ClientID("prod.example", "ops-1"), false},
		{"spiffe://gossip/node/a%20b", NodeID("gossip", "a b"), false},
		{"spiffe://gossip/node/", Identity{}, true},
		{"spiffe://gossip/node", Identity{}, true},
		{"spiffe://gossip/admin/a", Identity{}, true},
		{"spiffe://gossip/node/a/b", Identity{}, true},
		{"spiffe:///node/a", Identity{}, true},
		{"spiffe://gossip:443/node/a", Identity{}, true},
		{"spiffe://u@gossip/node/a", Identity{}, true},
		{"spiffe://gossip/node/a?x=1", Identity{}, true},
		{"https://gossip/node/a", Identity{}, true},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseID(u)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseID(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil {
			if back, _ := url.Parse(got.URI()); back == nil {
				t.Errorf("%+v: URI %q does not parse", got, got.URI())
			} else if again, err := ParseID(back); err != nil || again != got {
				t.Errorf("%+v: URI %q parses as %+v, %v", got, got.URI(), again, err)
			}
		}
	}
}

func TestIdentityOfTrustDomain(t *testing.T) {
	p := newPKI(t, "other")
	is, err := p.ca.Issue(NodeID("other", "a"), timeZero, timeZero)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := IdentityOf(is.Cert, "gossip"); !errors.Is(err, ErrWrongTrustDomain) {
		t.Errorf("IdentityOf in the wrong trust domain: %v", err)
	}
	if id, err := IdentityOf(is.Cert, "other"); err != nil || id != NodeID("other", "a") {
		t.Errorf("IdentityOf = %v, %v", id, err)
	}
	is.Cert.URIs = append(is.Cert.URIs, is.Cert.URIs[0])
	if _, err := IdentityOf(is.Cert, "other"); !errors.Is(err, ErrManySPIFFEIDs) {
		t.Errorf("two SPIFFE ids: %v", err)
	}
	is.Cert.URIs = nil
	if _, err := IdentityOf(is.Cert, "other"); !errors.Is(err, ErrNoSPIFFEID) {
		t.Errorf("no SPIFFE id: %v", err)
	}
}

package core

import (
	"strings"
	"testing"
	"time"
)

func TestValidateFillsDefaults(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(zero Config) = %v, want nil", err)
	}
	tests := []struct {
		field     string
		got, want any
	}{
		{"Fanout", c.Fanout, 3},
		{"MaxPayloadBytes", c.MaxPayloadBytes, 1 << 20},
		{"MaxHashBytes", c.MaxHashBytes, 256},
		{"MinTTL", c.MinTTL, 2 * time.Second},
		{"MaxTTL", c.MaxTTL, 64 * time.Second},
		{"LongTTL", c.LongTTL, 10 * time.Minute},
		{"MaxSeen", c.MaxSeen, 1 << 18},
		{"MaxActive", c.MaxActive, 1 << 16},
		{"AckTimeout", c.AckTimeout, 2 * time.Second},
		{"MaxAttempts", c.MaxAttempts, 4},
		{"RetryBackoff", c.RetryBackoff, 100 * time.Millisecond},
		{"MaxRetryBackoff", c.MaxRetryBackoff, 2 * time.Second},
		{"InitialRTT", c.InitialRTT, 50 * time.Millisecond},
		{"HopWindow", c.HopWindow, time.Minute},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.field, tt.got, tt.want)
		}
	}

	// Validate is idempotent on its own output.
	again := c
	if err := again.Validate(); err != nil || again != c {
		t.Errorf("second Validate changed the config or failed: err=%v\n got %+v\nwant %+v", err, again, c)
	}
}

func TestValidateKeepsSetValues(t *testing.T) {
	set := Config{
		Fanout:          7,
		MaxPayloadBytes: 1000,
		MaxHashBytes:    32,
		MinTTL:          time.Second,
		MaxTTL:          10 * time.Second,
		LongTTL:         time.Minute,
		MaxSeen:         100,
		MaxActive:       10,
		AckTimeout:      time.Second,
		MaxAttempts:     1,
		RetryBackoff:    time.Millisecond,
		MaxRetryBackoff: time.Second,
		InitialRTT:      time.Millisecond,
		HopWindow:       time.Second,
		GraftTimeout:    time.Millisecond,
		SyncInterval:    time.Minute,
		StoreBytes:      5,
		MaxGraft:        6,
		MaxSyncMessages: 7,
		MaxDigestAbove:  8,
		MaxHoles:        9,
		PeerGrace:       2 * time.Second,
	}
	c := set
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate = %v, want nil", err)
	}
	if c != set {
		t.Errorf("Validate changed explicitly set fields:\n got %+v\nwant %+v", c, set)
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // substring of the error; "" means valid
	}{
		{"MinTTL above MaxTTL", func(c *Config) { c.MinTTL, c.MaxTTL = 10*time.Second, 5*time.Second }, "MinTTL"},
		{"MinTTL above default MaxTTL", func(c *Config) { c.MinTTL = 65 * time.Second }, "MinTTL"},
		{"MinTTL equal to MaxTTL", func(c *Config) { c.MinTTL, c.MaxTTL = 5*time.Second, 5*time.Second }, ""},
		{"LongTTL below MaxTTL", func(c *Config) { c.LongTTL = 63 * time.Second }, "LongTTL"},
		{"LongTTL below explicit MaxTTL", func(c *Config) { c.MaxTTL, c.LongTTL = time.Hour, 59*time.Minute }, "LongTTL"},
		{"LongTTL equal to MaxTTL", func(c *Config) { c.LongTTL = 64 * time.Second }, ""},
		{"RetryBackoff above MaxRetryBackoff", func(c *Config) { c.RetryBackoff, c.MaxRetryBackoff = time.Second, 500*time.Millisecond }, "RetryBackoff"},
		{"RetryBackoff above default MaxRetryBackoff", func(c *Config) { c.RetryBackoff = 3 * time.Second }, "RetryBackoff"},
		{"RetryBackoff equal to MaxRetryBackoff", func(c *Config) { c.RetryBackoff, c.MaxRetryBackoff = time.Second, time.Second }, ""},
		{"negative Fanout", func(c *Config) { c.Fanout = -2 }, "fanout"},
		{"negative MaxPayloadBytes", func(c *Config) { c.MaxPayloadBytes = -1 }, "positive"},
		{"negative MaxHashBytes", func(c *Config) { c.MaxHashBytes = -1 }, "positive"},
		{"negative MaxSeen", func(c *Config) { c.MaxSeen = -1 }, "positive"},
		{"negative MaxActive", func(c *Config) { c.MaxActive = -1 }, "positive"},
		{"negative MaxAttempts", func(c *Config) { c.MaxAttempts = -1 }, "positive"},
		{"negative MinTTL", func(c *Config) { c.MinTTL = -time.Second }, "positive"},
		{"negative MaxTTL", func(c *Config) { c.MaxTTL = -time.Second }, "positive"},
		{"negative LongTTL", func(c *Config) { c.LongTTL = -time.Second }, "positive"},
		{"negative AckTimeout", func(c *Config) { c.AckTimeout = -time.Second }, "positive"},
		{"negative RetryBackoff", func(c *Config) { c.RetryBackoff = -time.Second }, "positive"},
		{"negative MaxRetryBackoff", func(c *Config) { c.MaxRetryBackoff = -time.Second }, "positive"},
		{"negative InitialRTT", func(c *Config) { c.InitialRTT = -time.Second }, "positive"},
		{"negative HopWindow", func(c *Config) { c.HopWindow = -time.Second }, "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate = nil, want an error mentioning %q (config %+v)", tt.wantErr, c)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate = %q, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

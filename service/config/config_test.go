package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestPortalValidation(t *testing.T) {
	used := map[int]string{443: "HTTPS listener", 80: "HTTP redirect listener", 9443: "admin API"}
	tests := []struct {
		name   string
		edit   func(p *PortalSettings)
		field  string // "" = valid
		substr string
	}{
		{"defaults", func(p *PortalSettings) {}, "", ""},
		{"bad launch method", func(p *PortalSettings) { p.Client.LaunchMethod = "carrier-pigeon" }, "client.launchMethod", "browser, native, native-with-fallback"},
		{"select method with browser", func(p *PortalSettings) { p.Client.AllowUserSelect = true }, "client.allowUserSelect", "native-with-fallback"},
		{"select method with native", func(p *PortalSettings) {
			p.Client.LaunchMethod = LaunchNative
			p.Client.AllowUserSelect = true
		}, "client.allowUserSelect", "native-with-fallback"},
		{"select method with fallback", func(p *PortalSettings) {
			p.Client.LaunchMethod = LaunchNativeWithFallback
			p.Client.AllowUserSelect = true
		}, "", ""},
		{"bad detection", func(p *PortalSettings) { p.Client.Detection = "sometimes" }, "client.detection", "automatic or on-prompt"},
		{"timeout zero", func(p *PortalSettings) { p.Client.DetectionTimeoutSeconds = 0 }, "client.detectionTimeoutSeconds", "from 1 to 300"},
		{"timeout huge", func(p *PortalSettings) { p.Client.DetectionTimeoutSeconds = 3600 }, "client.detectionTimeoutSeconds", "from 1 to 300"},
		{"ip detection relative url", func(p *PortalSettings) {
			p.Client.IPDetection = IPDetection{Enabled: true, URL: "/ip"}
		}, "client.ipDetection.url", "absolute http"},
		{"ip detection ftp", func(p *PortalSettings) {
			p.Client.IPDetection = IPDetection{Enabled: true, URL: "ftp://ip.example.com/"}
		}, "client.ipDetection.url", "absolute http"},
		{"ip detection empty when enabled", func(p *PortalSettings) {
			p.Client.IPDetection = IPDetection{Enabled: true}
		}, "client.ipDetection.url", "give the service URL"},
		{"ip detection ok", func(p *PortalSettings) {
			p.Client.IPDetection = IPDetection{Enabled: true, URL: "https://api.ipify.org?format=json"}
		}, "", ""},
		{"alternate port zero", func(p *PortalSettings) { p.NLB.AlternatePort = 0 }, "nlb.alternatePort", "1 to 65535"},
		{"alternate port too big", func(p *PortalSettings) { p.NLB.AlternatePort = 70000 }, "nlb.alternatePort", "1 to 65535"},
		{"alternate port collides with https", func(p *PortalSettings) {
			p.NLB.AlternatePortEnabled = true
			p.NLB.AlternatePort = 443
		}, "nlb.alternatePort", "already used by the HTTPS listener"},
		{"alternate port collision ignored when disabled", func(p *PortalSettings) { p.NLB.AlternatePort = 443 }, "", ""},
		{"alternate host bad", func(p *PortalSettings) {
			p.NLB.AlternateHostEnabled = true
			p.NLB.AlternateHost = "bad host!"
		}, "nlb.alternateHost", "not a valid host name"},
		{"alternate host enabled empty", func(p *PortalSettings) { p.NLB.AlternateHostEnabled = true }, "nlb.alternateHost", "give a host name"},
		{"path root", func(p *PortalSettings) { p.Web.Path = "/" }, "web.path", "own path"},
		{"path no slash", func(p *PortalSettings) { p.Web.Path = "portal" }, "web.path", "starting with /"},
		{"path with query", func(p *PortalSettings) { p.Web.Path = "/portal?x=1" }, "web.path", "starting with /"},
		{"path reserved", func(p *PortalSettings) { p.Web.Path = "/api" }, "web.path", "reserved"},
		{"path nested ok", func(p *PortalSettings) { p.Web.Path = "/office/portal" }, "", ""},
		{"cookie empty", func(p *PortalSettings) { p.Web.CookieName = "" }, "web.cookieName", "AWSALB"},
		{"cookie with space", func(p *PortalSettings) { p.Web.CookieName = "my cookie" }, "web.cookieName", "no spaces"},
		{"cookie with equals", func(p *PortalSettings) { p.Web.CookieName = "a=b" }, "web.cookieName", "no spaces"},
		{"cookie AWSALB", func(p *PortalSettings) { p.Web.CookieName = "AWSALB" }, "", ""},
		{"file transfer bad", func(p *PortalSettings) { p.Restrictions.FileTransfer = "sideways" }, "restrictions.fileTransfer", "bidirectional"},
		{"clipboard bad", func(p *PortalSettings) { p.Restrictions.Clipboard = "" }, "restrictions.clipboard", "bidirectional"},
		{"cors origin with path", func(p *PortalSettings) {
			p.Restrictions.CORS = CORS{Enabled: true, Origins: []string{"https://a.example.com/app"}, CacheSeconds: 60}
		}, "restrictions.cors.origins[0]", "no path"},
		{"cors origin not a url", func(p *PortalSettings) {
			p.Restrictions.CORS = CORS{Enabled: true, Origins: []string{"a.example.com"}, CacheSeconds: 60}
		}, "restrictions.cors.origins[0]", "scheme://host"},
		{"cors cache negative", func(p *PortalSettings) { p.Restrictions.CORS.CacheSeconds = -1 }, "restrictions.cors.cacheSeconds", "0 to 86400"},
		{"cors ok", func(p *PortalSettings) {
			p.Restrictions.CORS = CORS{Enabled: true, Origins: []string{"https://intranet.example.com:8443"}, CacheSeconds: 60}
		}, "", ""},
		{"cors enabled without origins (not normalized)", func(p *PortalSettings) { p.Restrictions.CORS.Enabled = true }, "restrictions.cors.origins", "at least one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPortal()
			tc.edit(&p)
			err := p.Validate(used)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			fes, ok := AsFieldErrors(err)
			if !ok {
				t.Fatalf("want field error on %s, got %v", tc.field, err)
			}
			for _, fe := range fes {
				if fe.Field == tc.field {
					if !strings.Contains(fe.Message, tc.substr) {
						t.Fatalf("message %q lacks %q", fe.Message, tc.substr)
					}
					return
				}
			}
			t.Fatalf("no error on %s in %v", tc.field, fes)
		})
	}
}

func TestNormalizeTurnsCORSOffWithNotice(t *testing.T) {
	p := DefaultPortal()
	p.Restrictions.CORS = CORS{Enabled: true, Origins: []string{"  ", ""}, CacheSeconds: 60}
	notes := p.Normalize()
	if p.Restrictions.CORS.Enabled {
		t.Fatal("CORS still enabled without origins")
	}
	if len(notes) != 1 || notes[0].Field != "restrictions.cors.enabled" || !strings.Contains(notes[0].Message, "no allowed origins") {
		t.Fatalf("notices = %+v", notes)
	}
	if err := p.Validate(nil); err != nil {
		t.Fatalf("normalized settings invalid: %v", err)
	}
}

func TestNormalizeFlagsMultiTenant(t *testing.T) {
	p := DefaultPortal()
	p.NLB.AlternatePortEnabled = true
	notes := p.Normalize()
	if len(notes) != 1 || !strings.Contains(notes[0].Message, "multi-tenant") {
		t.Fatalf("notices = %+v", notes)
	}
}

func TestGatewayValidation(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(g *Gateway)
		field string
	}{
		{"defaults", func(g *Gateway) {}, ""},
		{"forwarding without upstream", func(g *Gateway) { g.Mode = ModeForwarding }, "upstream"},
		{"forwarding with upstream", func(g *Gateway) { g.Mode = ModeForwarding; g.Upstream = "gw2.example.com:443" }, ""},
		{"bad mode", func(g *Gateway) { g.Mode = "turbo" }, "mode"},
		{"admin on all interfaces", func(g *Gateway) { g.Listen.Admin = ":9443" }, "listen.admin"},
		{"http equals https", func(g *Gateway) { g.Listen.HTTP = ":443" }, "listen.http"},
		{"bad trusted proxy", func(g *Gateway) { g.TrustedProxies = []string{"10.0.0.0/33"} }, "trustedProxies[0]"},
		{"dns off", func(g *Gateway) { g.Detect.DNSListen = DNSOff }, ""},
		{"dns empty is the default", func(g *Gateway) { g.Detect.DNSListen = "" }, ""},
		{"dns not an address", func(g *Gateway) { g.Detect.DNSListen = "8053" }, "detect.dnsListen"},
		{"dns port zero", func(g *Gateway) { g.Detect.DNSListen = ":0" }, "detect.dnsListen"},
		{"dns equals https", func(g *Gateway) { g.Detect.DNSListen = "0.0.0.0:443" }, "detect.dnsListen"},
		{"dns on 53", func(g *Gateway) { g.Detect.DNSListen = ":53" }, ""},
		{"zone ip", func(g *Gateway) { g.Detect.Zone = "10.0.0.1" }, "detect.zone"},
		{"zone one label", func(g *Gateway) { g.Detect.Zone = "detect" }, "detect.zone"},
		{"zone bad label", func(g *Gateway) { g.Detect.Zone = "de tect.example.com" }, "detect.zone"},
		{"zone ok with dot", func(g *Gateway) { g.Detect.Zone = "detect.gw.example.com." }, ""},
		{"alternate port equals dns", func(g *Gateway) {
			g.Portal.NLB.AlternatePortEnabled = true
			g.Portal.NLB.AlternatePort = 8053
		}, "portal.nlb.alternatePort"},
		{"alternate port equals admin", func(g *Gateway) {
			g.Portal.NLB.AlternatePortEnabled = true
			g.Portal.NLB.AlternatePort = 9443
		}, "portal.nlb.alternatePort"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := DefaultGateway()
			tc.edit(&g)
			err := g.Validate(nil)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			fes, _ := AsFieldErrors(err)
			for _, fe := range fes {
				if fe.Field == tc.field {
					return
				}
			}
			t.Fatalf("want error on %s, got %v", tc.field, err)
		})
	}
}

func TestResolveInheritance(t *testing.T) {
	site := DefaultPortal()
	g := DefaultGateway()
	g.Portal.Web.CookieName = "GatewayOwn"

	e := Resolve(site, g)
	if e.Source != SourceSite || e.Portal.Web.CookieName != DefaultCookieName {
		t.Fatalf("inheriting gateway: %+v", e)
	}
	site.Web.CookieName = "AWSALB"
	if e := Resolve(site, g); e.Portal.Web.CookieName != "AWSALB" {
		t.Fatalf("inheriting gateway did not follow the site edit: %q", e.Portal.Web.CookieName)
	}
	g.InheritPortal = false
	if e := Resolve(site, g); e.Source != SourceGateway || e.Portal.Web.CookieName != "GatewayOwn" {
		t.Fatalf("own settings: %+v", e)
	}
	site.Web.CookieName = "Changed"
	if e := Resolve(site, g); e.Portal.Web.CookieName != "GatewayOwn" {
		t.Fatal("non-inheriting gateway followed a site edit")
	}
	g.Portal.Enabled = false
	if e := Resolve(site, g); e.PortalAvailable || !strings.Contains(e.Reason, "disabled") {
		t.Fatalf("disabled portal: %+v", e)
	}
	g.Portal.Enabled = true
	g.Mode = ModeForwarding
	if e := Resolve(site, g); e.PortalAvailable || !strings.Contains(e.Reason, "Forwarding") {
		t.Fatalf("forwarding: %+v", e)
	}
}

func TestTransferIntersect(t *testing.T) {
	for _, a := range Transfers {
		for _, b := range Transfers {
			got := a.Intersect(b)
			if got.ClientToServer() != (a.ClientToServer() && b.ClientToServer()) ||
				got.ServerToClient() != (a.ServerToClient() && b.ServerToClient()) {
				t.Errorf("%s ∩ %s = %s", a, b, got)
			}
		}
	}
	if Transfer("junk").Intersect(TransferBidirectional) != TransferDisabled {
		t.Error("unknown value must fail closed")
	}
}

func TestLivePublish(t *testing.T) {
	l := NewLive(&Snapshot{Site: DefaultPortal()})
	ch, stop := l.Subscribe()
	defer stop()
	s := &Snapshot{Site: DefaultPortal()}
	s.Site.Web.CookieName = "X"
	l.Publish(s)
	got := <-ch
	if got.Site.Web.CookieName != "X" || l.Load().Version != 1 {
		t.Fatalf("got %+v", got)
	}
}

func TestDecodeStrict(t *testing.T) {
	var p PortalSettings
	if err := DecodeStrict(strings.NewReader(`{"enabled":true,"colour":"red"}`), &p); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown field accepted: %v", err)
	}
	if err := DecodeStrict(strings.NewReader(`{"enabled":true} {}`), &p); err == nil {
		t.Fatal("trailing data accepted")
	}
	err := DecodeStrict(strings.NewReader(`{"nlb":{"alternatePort":"443"}}`), &p)
	fes, ok := AsFieldErrors(err)
	if !ok || fes[0].Field != "nlb.alternatePort" {
		t.Fatalf("type error not mapped to field: %v", err)
	}
}

func TestResourceValidation(t *testing.T) {
	r := Resource{ID: "ws1", Name: "Workstation", Protocol: ProtocolVNC, Host: "10.0.0.5"}
	r.Normalize()
	if r.Port != 5900 || r.Icon != "desktop" || r.Clipboard != TransferBidirectional {
		t.Fatalf("defaults not filled: %+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := r
	bad.Credentials.Mode = CredAsk
	bad.RemoteApp = &RemoteApp{Program: "notepad"}
	bad.ID = "Bad ID"
	fes, _ := AsFieldErrors(bad.Validate())
	want := map[string]bool{"credentials.mode": false, "remoteApp": false, "id": false}
	for _, fe := range fes {
		want[fe.Field] = true
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("no error for %s in %v", f, fes)
		}
	}
}

// FuzzDecodeSettings feeds arbitrary JSON to the strict decoder and the
// validator: neither may panic, and anything that validates must survive a
// JSON round trip unchanged.
func FuzzDecodeSettings(f *testing.F) {
	def, _ := json.Marshal(DefaultGateway())
	f.Add(def)
	f.Add([]byte(`{"mode":"forwarding","upstream":"x:1"}`))
	f.Add([]byte(`{"portal":{"nlb":{"alternatePort":-1}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var g Gateway
		if err := DecodeStrict(strings.NewReader(string(data)), &g); err != nil {
			return
		}
		g.Normalize()
		if g.Validate(nil) != nil {
			return
		}
		out, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		var back Gateway
		if err := DecodeStrict(strings.NewReader(string(out)), &back); err != nil {
			t.Fatalf("valid settings do not decode again: %v", err)
		}
		if back.Validate(nil) != nil {
			t.Fatal("valid settings invalid after round trip")
		}
	})
}

func TestDetectDefaults(t *testing.T) {
	tests := []struct {
		name       string
		detect     Detect
		hosts      []string
		addr, zone string
	}{
		{"new gateway", DefaultGateway().Detect, nil, DefaultDNSAddr, DefaultDetectZone},
		{"record from before the setting", Detect{}, nil, DefaultDNSAddr, DefaultDetectZone},
		{"off", Detect{DNSListen: DNSOff}, nil, "", DefaultDetectZone},
		{"zone from public host", Detect{}, []string{"10.0.0.5", "GW.Example.com"}, DefaultDNSAddr, "detect.gw.example.com"},
		{"single-label host is not used", Detect{}, []string{"gateway"}, DefaultDNSAddr, DefaultDetectZone},
		{"explicit zone wins", Detect{DNSListen: "127.0.0.1:5353", Zone: "Probe.Example.org."}, []string{"gw.example.com"}, "127.0.0.1:5353", "probe.example.org"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := DefaultGateway()
			g.Detect, g.PublicHosts = tc.detect, tc.hosts
			if got := g.DNSAddr(); got != tc.addr {
				t.Errorf("DNSAddr = %q, want %q", got, tc.addr)
			}
			if got := g.DetectZone(); got != tc.zone {
				t.Errorf("DetectZone = %q, want %q", got, tc.zone)
			}
		})
	}
}

// TestClientPolicyGatewaysRefused: the gateway criterion could never tell
// gateways apart (they share one ID), so a list is refused with what to do,
// while the empty key of older exports still decodes.
func TestClientPolicyGatewaysRefused(t *testing.T) {
	p := ClientPolicy{ID: "office", Name: "Office", Gateways: []string{"default"}}
	err := p.Validate()
	var fe FieldErrors
	if !errors.As(err, &fe) || len(fe) != 1 || fe[0].Field != "gateways" || !strings.Contains(fe[0].Message, "same ID") {
		t.Fatalf("gateways list: %v", err)
	}
	p.Gateways = nil
	if err := p.Validate(); err != nil {
		t.Fatalf("without gateways: %v", err)
	}
}

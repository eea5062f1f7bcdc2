package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// rendered is one kustomization's output, decoded.
type rendered struct {
	services     map[string]*corev1.Service
	statefulSets map[string]*appsv1.StatefulSet
	pdbs         map[string]*policyv1.PodDisruptionBudget
}

// strict decodes JSON into v, failing on fields v's type does not have.
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func render(t *testing.T, dir string) rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := rendered{services: map[string]*corev1.Service{}, statefulSets: map[string]*appsv1.StatefulSet{}, pdbs: map[string]*policyv1.PodDisruptionBudget{}}
	for _, r := range resMap.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		gvk := r.GetGvk()
		id := fmt.Sprintf("%s %s/%s %s", dir, gvk.Group, gvk.Kind, r.GetName())
		var target any
		switch gv := gvk.ApiVersion(); {
		case gv == "v1" && gvk.Kind == "Service":
			s := &corev1.Service{}
			out.services[r.GetName()], target = s, s
		case gv == "apps/v1" && gvk.Kind == "StatefulSet":
			s := &appsv1.StatefulSet{}
			out.statefulSets[r.GetName()], target = s, s
		case gv == "policy/v1" && gvk.Kind == "PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			out.pdbs[r.GetName()], target = p, p
		default:
			t.Errorf("%s: apiVersion %s kind %s is not one this test knows: add it here", id, gv, gvk.Kind)
			continue
		}
		if err := strict(b, target); err != nil {
			t.Errorf("%s: does not decode strictly as %s: %v", id, gvk.Kind, err)
		}
	}
	return out
}

// gossipdEnv are the environment variables gossipd reads, from its own
// --help (built from this repository).
func gossipdEnv(t *testing.T) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", "run", "./cmd/gossipd", "--help")
	cmd.Dir = filepath.Join("..", "..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gossipd --help: %v", err)
	}
	env := map[string]bool{}
	for _, m := range regexp.MustCompile(`env\s+(GOSSIPD_[A-Z_]+)\)`).FindAllStringSubmatch(string(out), -1) {
		env[m[1]] = true
	}
	if len(env) < 10 {
		t.Fatalf("found only %d GOSSIPD_ variables in gossipd --help", len(env))
	}
	return env
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func TestBase(t *testing.T) {
	r := render(t, filepath.Join("..", "base"))
	known := gossipdEnv(t)

	headless, client := r.services["gossip-headless"], r.services["gossip"]
	ss := r.statefulSets["gossip"]
	pdb := r.pdbs["gossip"]
	if headless == nil || client == nil || ss == nil || pdb == nil {
		t.Fatalf("want Services gossip-headless and gossip, StatefulSet gossip, PodDisruptionBudget gossip; got %v %v %v %v", headless != nil, client != nil, ss != nil, pdb != nil)
	}
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("gossip-headless: clusterIP %q publishNotReadyAddresses %v: want None and true (nodes join through it before they are ready)",
			headless.Spec.ClusterIP, headless.Spec.PublishNotReadyAddresses)
	}
	if client.Spec.PublishNotReadyAddresses || client.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Error("the client Service must route to ready pods only, through a cluster IP")
	}
	if ss.Spec.ServiceName != headless.Name {
		t.Errorf("StatefulSet serviceName %q, want %q", ss.Spec.ServiceName, headless.Name)
	}
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas != 5 {
		t.Errorf("replicas %v, want 5", ss.Spec.Replicas)
	}
	pod := ss.Spec.Template
	for k, v := range ss.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("StatefulSet selector %s=%s does not match the pod labels %v", k, v, pod.Labels)
		}
	}
	for _, s := range []map[string]string{headless.Spec.Selector, client.Spec.Selector, pdb.Spec.Selector.MatchLabels} {
		for k, v := range s {
			if pod.Labels[k] != v {
				t.Errorf("selector %s=%s does not match the pod labels %v", k, v, pod.Labels)
			}
		}
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != 9001 || ports["admin"] != 9002 {
		t.Errorf("container ports %v, want grpc 9001 and admin 9002", ports)
	}
	for _, s := range []*corev1.Service{headless, client} {
		for _, p := range s.Spec.Ports {
			if _, ok := ports[p.TargetPort.String()]; !ok {
				t.Errorf("Service %s port %s targets %q, which the container does not name", s.Name, p.Name, p.TargetPort.String())
			}
		}
	}
	env := envOf(c)
	for name := range env {
		if strings.HasPrefix(name, "GOSSIPD_") && !known[name] {
			t.Errorf("the StatefulSet sets %s, which gossipd does not read (gossipd --help)", name)
		}
	}
	wantEnv := map[string]string{
		"GOSSIPD_ID": "$(POD_NAME)", "GOSSIPD_ADVERTISE": "$(POD_IP):9001", "GOSSIPD_LISTEN": "0.0.0.0:9001",
		"GOSSIPD_ADMIN_LISTEN": "0.0.0.0:9002", "GOSSIPD_JOIN": headless.Name + ":9001", "GOSSIPD_DATA_DIR": "/data",
	}
	for k, v := range wantEnv {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	// $(VAR) is expanded by the kubelet only from variables defined
	// before it in the list.
	defined := map[string]bool{}
	for _, e := range c.Env {
		for _, m := range regexp.MustCompile(`\$\(([A-Z_]+)\)`).FindAllStringSubmatch(e.Value, -1) {
			if !defined[m[1]] {
				t.Errorf("env %s uses $(%s) before it is defined", e.Name, m[1])
			}
		}
		defined[e.Name] = true
	}
	if p := c.ReadinessProbe; p == nil || p.GRPC == nil || p.GRPC.Port != 9001 {
		t.Errorf("readiness probe %+v: want the native gRPC probe on 9001", p)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s probe %+v: want GET /healthz on the admin port", name, p)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	mounted := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounted[m.Name] = m.MountPath
	}
	if len(ss.Spec.VolumeClaimTemplates) != 1 || mounted[ss.Spec.VolumeClaimTemplates[0].Name] != env["GOSSIPD_DATA_DIR"] {
		t.Errorf("want one PersistentVolumeClaim template mounted at GOSSIPD_DATA_DIR %q; mounts %v", env["GOSSIPD_DATA_DIR"], mounted)
	}
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and user 65532 (the image's)", sc)
	}
}

func TestTLSOverlay(t *testing.T) {
	base := render(t, filepath.Join("..", "base"))
	r := render(t, filepath.Join("..", "overlays", "tls"))
	known := gossipdEnv(t)
	ss := r.statefulSets["gossip"]
	if ss == nil || len(r.services) != len(base.services) || len(r.pdbs) != len(base.pdbs) {
		t.Fatal("the TLS overlay must keep every object of the base")
	}
	c := ss.Spec.Template.Spec.Containers[0]
	env := envOf(c)
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	var secret string
	for _, v := range ss.Spec.Template.Spec.Volumes {
		if v.Name == "tls" && v.Secret != nil {
			secret = v.Secret.SecretName
		}
	}
	if secret != "gossip-tls" || mounts["tls"] == "" || mounts["data"] != "/data" {
		t.Fatalf("want the Secret gossip-tls mounted (and /data kept); secret %q mounts %v", secret, mounts)
	}
	for name, file := range map[string]string{"GOSSIPD_TLS_CERT": "tls.crt", "GOSSIPD_TLS_KEY": "tls.key", "GOSSIPD_TLS_CA": "ca.crt"} {
		if env[name] != mounts["tls"]+"/"+file {
			t.Errorf("env %s = %q, want %s/%s", name, env[name], mounts["tls"], file)
		}
		if !known[name] {
			t.Errorf("the TLS overlay sets %s, which gossipd does not read (not in gossipd --help)", name)
		}
	}
	for name := range env {
		if strings.HasPrefix(name, "GOSSIPD_") && !known[name] {
			t.Errorf("the overlay sets %s, which gossipd does not read", name)
		}
	}
	if _, ok := env["GOSSIPD_JOIN"]; !ok {
		t.Error("the overlay lost the base's environment")
	}
}

// certificate is the part of cert-manager's v1 Certificate that the
// example uses; strict decoding catches a misspelt field there too.
type certificate struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		SecretName  string `json:"secretName"`
		Duration    string `json:"duration"`
		RenewBefore string `json:"renewBefore"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		Usages    []string `json:"usages"`
		URIs      []string `json:"uris"`
		DNSNames  []string `json:"dnsNames"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

func TestCertManagerExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "examples", "cert-manager-certificate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	var c certificate
	if err := strict(j, &c); err != nil {
		t.Fatalf("the Certificate example does not decode strictly: %v", err)
	}
	if c.APIVersion != "cert-manager.io/v1" || c.Kind != "Certificate" {
		t.Errorf("apiVersion %q kind %q", c.APIVersion, c.Kind)
	}
	if c.Spec.SecretName != "gossip-tls" {
		t.Errorf("secretName %q, want the Secret overlays/tls mounts, gossip-tls", c.Spec.SecretName)
	}
	if want := "spiffe://gossip/node/" + c.Metadata.Name; !slices.Contains(c.Spec.URIs, want) {
		t.Errorf("uris %v, want the SPIFFE id of node %s: %s", c.Spec.URIs, c.Metadata.Name, want)
	}
	for _, u := range []string{"server auth", "client auth"} {
		if !slices.Contains(c.Spec.Usages, u) {
			t.Errorf("usages %v lack %q: nodes are both servers and clients of each other", c.Spec.Usages, u)
		}
	}
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) the example uses; strict decoding into it
// catches a misspelt field.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// TestServiceMonitorExample: the example selects the headless Service (the
// one that lists every pod, ready or not) by its labels and scrapes a port
// that Service names, which targets the container's admin port, at
// /metrics.
func TestServiceMonitorExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "examples", "servicemonitor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	var sm serviceMonitor
	if err := strict(j, &sm); err != nil {
		t.Fatalf("the ServiceMonitor example does not decode strictly: %v", err)
	}
	if sm.APIVersion != "monitoring.coreos.com/v1" || sm.Kind != "ServiceMonitor" || len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("apiVersion %q kind %q, %d endpoints; want a monitoring.coreos.com/v1 ServiceMonitor with one endpoint", sm.APIVersion, sm.Kind, len(sm.Spec.Endpoints))
	}
	headless := render(t, filepath.Join("..", "base")).services["gossip-headless"]
	for k, v := range sm.Spec.Selector.MatchLabels {
		if headless.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the headless Service's labels %v", k, v, headless.Labels)
		}
	}
	ep := sm.Spec.Endpoints[0]
	var target string
	for _, p := range headless.Spec.Ports {
		if p.Name == ep.Port {
			target = p.TargetPort.String()
		}
	}
	if target != "admin" || ep.Path != "/metrics" {
		t.Errorf("endpoint port %q (target %q) path %q: want a port of the headless Service that targets admin, and /metrics", ep.Port, target, ep.Path)
	}
}

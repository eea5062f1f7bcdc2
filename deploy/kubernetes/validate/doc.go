// Package validate checks the Kubernetes manifests in deploy/kubernetes
// without a cluster: it renders every kustomization with the kustomize
// library (what kubectl apply -k runs), decodes every object strictly into
// the k8s.io/api types of its kind (an unknown or misspelt field fails),
// and checks what the deployment relies on: the headless Service
// publishes pods that are not ready, the StatefulSet's probes, volumes,
// ports and GOSSIPD_* variables agree with each other and with gossipd.
//
// It is a module of its own so that the Kubernetes libraries stay out of
// the gossip module; `make k8s-validate` (part of make test) runs it.
package validate

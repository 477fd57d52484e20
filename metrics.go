package hiqlite

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics returns the collector of the node's Prometheus metrics (the
// README lists them), for a registry of the application's:
//
//	reg.MustRegister(node.Metrics())
//
// Every metric carries the label node, the node's id, so the collectors of
// several nodes of one process can share a registry. hiqlite registers
// nothing in Prometheus' global default registry.
func (n *Node) Metrics() prometheus.Collector { return n.c.Metrics() }

// MetricsHandler returns an http.Handler that serves the node's metrics,
// and only them, in the Prometheus exposition formats, from a registry of
// the node's own. Mount it where a scraper can reach it (hiqlite serve
// mounts it at /metrics); it does no authentication itself.
func (n *Node) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(n.c.MetricsGatherer(), promhttp.HandlerOpts{})
}

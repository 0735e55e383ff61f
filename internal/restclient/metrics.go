package restclient

import "github.com/prometheus/client_golang/prometheus"

// Collector exports Totals as Prometheus metrics: requests, retries,
// throttled answers and time waited on rate limiters, by integration.
type Collector struct{}

var (
	descRequests  = prometheus.NewDesc("autoimport_api_requests_total", "API requests sent (attempts, retries included), by integration.", []string{"integration"}, nil)
	descRetries   = prometheus.NewDesc("autoimport_api_retries_total", "API requests that were retries, by integration.", []string{"integration"}, nil)
	descThrottled = prometheus.NewDesc("autoimport_api_throttled_total", "429 answers, by integration.", []string{"integration"}, nil)
	descWait      = prometheus.NewDesc("autoimport_api_limiter_wait_seconds_total", "Time spent waiting on rate limiters, by integration.", []string{"integration"}, nil)
)

// Describe implements prometheus.Collector.
func (Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRequests
	ch <- descRetries
	ch <- descThrottled
	ch <- descWait
}

// Collect implements prometheus.Collector.
func (Collector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range Totals() {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(s.Requests), name)
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(s.Retries), name)
		ch <- prometheus.MustNewConstMetric(descThrottled, prometheus.CounterValue, float64(s.Throttled), name)
		ch <- prometheus.MustNewConstMetric(descWait, prometheus.CounterValue, s.LimiterWait.Seconds(), name)
	}
}

module github.com/msp-tools/autoimport

go 1.26.0

require (
	github.com/hashicorp/go-retryablehttp v0.7.8
	github.com/sirupsen/logrus v1.10.2
	golang.org/x/time v0.16.0
)

require (
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

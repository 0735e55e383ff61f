package email

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"
)

//go:embed templates/welcome.txt.tmpl templates/welcome.html.tmpl
var defaultTemplates embed.FS

// DefaultSubject is the subject template used when Config.Subject is empty.
const DefaultSubject = "{{.CustomerName}}: set up your password self-service"

// TemplateData is what the subject, text and HTML templates see.
type TemplateData struct {
	CustomerName  string
	DisplayName   string // the person's name, or the username when the directory has none
	Username      string
	Email         string
	EnrollmentURL string
	// Subject is the rendered subject (in the text and HTML templates only).
	Subject string
}

// sampleData exercises a template once when the mailer is built, so a
// template that refers to a missing field fails at start, not per email.
var sampleData = TemplateData{
	CustomerName: "Example Corp", DisplayName: "Jane Doe", Username: "jdoe",
	Email: "jane.doe@example.com", EnrollmentURL: "https://reset.example.com/enrol?t=abc",
	Subject: "Example Corp: set up your password self-service",
}

// Template is a template's text and the name it is known by in messages
// (its file, for a template read from one).
type Template struct {
	Name string
	Text string
}

type templates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// loadTemplates parses the overrides, or the embedded defaults, and tries
// each template once.
func loadTemplates(subject string, text, html Template) (*templates, error) {
	if subject == "" {
		subject = DefaultSubject
	}
	t := &templates{}
	var err error
	if t.subject, err = texttemplate.New("subject").Option("missingkey=error").Parse(subject); err != nil {
		return nil, fmt.Errorf("subject template: %w", err)
	}
	src, name, err := templateSource(text, "templates/welcome.txt.tmpl")
	if err != nil {
		return nil, fmt.Errorf("text template: %w", err)
	}
	if t.text, err = texttemplate.New(name).Option("missingkey=error").Parse(src); err != nil {
		return nil, fmt.Errorf("text template: %w", err)
	}
	src, name, err = templateSource(html, "templates/welcome.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("HTML template: %w", err)
	}
	if t.html, err = htmltemplate.New(name).Option("missingkey=error").Parse(src); err != nil {
		return nil, fmt.Errorf("HTML template: %w", err)
	}
	if _, err := t.render(sampleData); err != nil {
		return nil, err
	}
	return t, nil
}

func templateSource(t Template, embedded string) (src, name string, err error) {
	if t.Text == "" {
		if t.Name != "" {
			return "", "", fmt.Errorf("%s is empty", t.Name)
		}
		b, err := defaultTemplates.ReadFile(embedded)
		return string(b), embedded, err
	}
	name = t.Name
	if name == "" {
		name = "custom template"
	}
	if !utf8.ValidString(t.Text) {
		return "", "", fmt.Errorf("%s is not valid UTF-8", name)
	}
	return t.Text, name, nil
}

type rendered struct {
	subject, text, html string
}

func (t *templates) render(d TemplateData) (rendered, error) {
	var r rendered
	var b bytes.Buffer
	if err := t.subject.Execute(&b, d); err != nil {
		return r, fmt.Errorf("subject template: %w", err)
	}
	r.subject = oneLine(b.String())
	if r.subject == "" {
		return r, fmt.Errorf("subject template: renders an empty subject")
	}
	d.Subject = r.subject
	b.Reset()
	if err := t.text.Execute(&b, d); err != nil {
		return r, fmt.Errorf("text template: %w", err)
	}
	r.text = b.String()
	b.Reset()
	if err := t.html.Execute(&b, d); err != nil {
		return r, fmt.Errorf("HTML template: %w", err)
	}
	r.html = b.String()
	return r, nil
}

// oneLine makes s fit in one header line: every control character
// (CR and LF included) becomes a space, and runs of spaces collapse.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

package emailtest

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// Message is one message the server received.
type Message struct {
	Seq      int      // 1-based arrival order
	MailFrom string   // envelope sender
	RcptTo   []string // envelope recipients
	Login    string   // the AUTH login that sent it, "" without AUTH
	TLS      bool     // whether it came over an encrypted connection
	// From, To and Subject are the decoded header values.
	From, To, Subject string
	// MessageID is the Message-ID header with its angle brackets.
	MessageID string
	Header    mail.Header
	// Text and HTML are the decoded text/plain and text/html bodies.
	Text, HTML string
	// ParseError is set when the message could not be parsed as MIME.
	ParseError string
	Raw        []byte
	ReceivedAt time.Time
	// Acked is false when the connection was dropped after DATA: the
	// server has the message but the sender never heard so.
	Acked bool
}

var wordDecoder = &mime.WordDecoder{}

func decodeHeader(s string) string {
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

// parseMessage reads the headers and the text and HTML bodies of a
// message; a message it cannot parse keeps Raw and notes ParseError.
func parseMessage(raw []byte) Message {
	m := Message{Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		m.ParseError = err.Error()
		return m
	}
	m.Header = msg.Header
	m.From = decodeHeader(msg.Header.Get("From"))
	m.To = decodeHeader(msg.Header.Get("To"))
	m.Subject = decodeHeader(msg.Header.Get("Subject"))
	m.MessageID = strings.TrimSpace(msg.Header.Get("Message-ID"))
	if err := m.readPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0); err != nil {
		m.ParseError = err.Error()
	}
	return m
}

func (m *Message) readPart(contentType, encoding string, body io.Reader, depth int) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if contentType == "" {
		mt, err = "text/plain", nil
	}
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth > 5 {
			return nil
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.readPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, depth+1); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &crlfStripper{r: body})
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	switch mt {
	case "text/plain":
		if m.Text == "" {
			m.Text = string(b)
		}
	case "text/html":
		if m.HTML == "" {
			m.HTML = string(b)
		}
	}
	return nil
}

// crlfStripper drops line breaks so base64 lines decode as one stream.
type crlfStripper struct{ r io.Reader }

func (c *crlfStripper) Read(p []byte) (int, error) {
	for {
		n, err := c.r.Read(p)
		j := 0
		for _, b := range p[:n] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// FieldError says which field is wrong, what value it had and what is allowed.
type FieldError struct {
	// Field is the JSON path of the field, e.g. "portal.nlb.alternatePort".
	Field string `json:"field"`
	// Value is the rejected value as text ("" when it was empty).
	Value string `json:"value"`
	// Message tells the admin what to do about it.
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	return fmt.Sprintf("%s: %s", e.Field, e.Message)
}

// FieldErrors is the list of everything wrong with one submitted object. It
// is returned whole so the GUI can mark every bad field at once.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// add records a problem with a field; value is formatted with %v.
func (es *FieldErrors) add(field string, value any, format string, args ...any) {
	*es = append(*es, FieldError{Field: field, Value: fmt.Sprint(value), Message: fmt.Sprintf(format, args...)})
}

// under prefixes every field path with prefix + ".".
func (es FieldErrors) under(prefix string) FieldErrors {
	out := make(FieldErrors, len(es))
	for i, e := range es {
		e.Field = prefix + "." + e.Field
		out[i] = e
	}
	return out
}

// errOrNil turns an empty list into a nil error, so callers can write
// `if err := x.Validate(); err != nil`.
func (es FieldErrors) errOrNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// AsFieldErrors extracts field errors from err, if it carries any.
func AsFieldErrors(err error) (FieldErrors, bool) {
	var fes FieldErrors
	if errors.As(err, &fes) {
		return fes, true
	}
	var fe FieldError
	if errors.As(err, &fe) {
		return FieldErrors{fe}, true
	}
	return nil, false
}

// MaxDocumentSize caps any JSON document the gateway decodes from an admin
// (API body or import file), so a mistaken upload cannot exhaust memory.
const MaxDocumentSize = 16 << 20

// DecodeStrict decodes exactly one JSON value from r into v. Unknown fields
// and trailing data are errors: a misspelt setting must not be silently
// ignored.
func DecodeStrict(r io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxDocumentSize+1))
	if err != nil {
		return fmt.Errorf("read JSON: %w", err)
	}
	if len(data) > MaxDocumentSize {
		return fmt.Errorf("JSON document larger than %d bytes", MaxDocumentSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode JSON: %w", explainJSON(err))
	}
	if dec.More() {
		return errors.New("decode JSON: unexpected data after the JSON value")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errors.New("decode JSON: unexpected data after the JSON value")
	}
	return nil
}

// explainJSON rewrites encoding/json's errors into the field-path wording the
// rest of the API uses.
func explainJSON(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return FieldError{Field: te.Field, Value: te.Value, Message: fmt.Sprintf("expected a %s", te.Type.String())}
	}
	return err
}

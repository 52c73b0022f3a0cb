package rdp

// KeyboardLayout is a Windows keyboard layout the session page offers. The
// page sends physical keys as scancodes, so which character a key makes is
// decided by the host's layout; the gateway writes ID into the client's
// core data (TS_UD_CS_CORE keyboardLayout) so Windows and xrdp pick it.
type KeyboardLayout struct {
	// ID is the layout's locale identifier, e.g. 0x0409 for en-US.
	ID uint32 `json:"id"`
	// Tag is the BCP 47 language tag browsers report, e.g. "en-US".
	Tag string `json:"tag"`
	// Name is what the user sees.
	Name string `json:"name"`
}

// KeyboardLayouts lists the layouts users can pick, default first.
func KeyboardLayouts() []KeyboardLayout {
	return []KeyboardLayout{
		{0x0409, "en-US", "English (United States)"},
		{0x0809, "en-GB", "English (United Kingdom)"},
		{0x0407, "de-DE", "German (Germany)"},
		{0x0807, "de-CH", "German (Switzerland)"},
		{0x040C, "fr-FR", "French (France)"},
		{0x0410, "it-IT", "Italian (Italy)"},
		{0x040A, "es-ES", "Spanish (Spain)"},
		{0x0413, "nl-NL", "Dutch (Netherlands)"},
		{0x0416, "pt-BR", "Portuguese (Brazil)"},
		{0x041D, "sv-SE", "Swedish (Sweden)"},
	}
}

// LookupKeyboardLayout returns the offered layout with the given ID.
func LookupKeyboardLayout(id uint32) (KeyboardLayout, bool) {
	for _, l := range KeyboardLayouts() {
		if l.ID == id {
			return l, true
		}
	}
	return KeyboardLayout{}, false
}

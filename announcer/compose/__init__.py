"""One message: its templates, wording, Markdown, text filling, invite, MIME and the list's rules."""

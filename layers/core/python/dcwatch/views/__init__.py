"""What operators read: `status` (one screen of the state now) and `history` (the audit trail), built from what
the ports return; no AWS here."""

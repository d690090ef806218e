"""Mailchimp Marketing API v3: members of one audience (VENDOR-APIS.md section 1)."""

"""HubSpot: CRM contacts v3 and communication preferences v4 (subscription types per purpose)."""

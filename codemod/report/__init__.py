"""What people and programs read: text lines, JSON, SARIF with fixes."""

"""Labels: judging predictions against the truth clients send, now or later (/feedback)."""

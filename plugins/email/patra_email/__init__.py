"""The email channel for Patra: IMAP in, SMTP out, threading, import."""

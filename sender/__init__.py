"""The textcall sender: light (no torch), sends text over a WebRTC data channel."""

import os

# Never let a test open a window or find a sound card by accident.
os.environ.pop("DISPLAY", None)
os.environ.pop("WAYLAND_DISPLAY", None)

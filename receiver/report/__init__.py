"""``textcall report``: what the text link costs against sending the audio and video."""

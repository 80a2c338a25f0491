"""Cloud Function entry points: parse the input, call one use case from shared.app, turn the result into an answer."""

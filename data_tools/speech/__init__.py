"""Pure decisions over speech the stages call: clip measurements, where to cut long recordings,
transcript-to-ASR alignment, voice changes and speaker consistency, MFA plumbing. Imports no stage."""

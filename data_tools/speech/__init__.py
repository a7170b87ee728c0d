"""Pure decisions over speech the stages call: clip measurements, where to cut long recordings,
transcript-to-ASR alignment, guards against ASR hallucinations, voice changes and speaker
consistency, MFA plumbing. May import the records and models; imports no stage."""

"""What users hand in, read without trusting it: input layouts, every file accounted for, ids
that are never paths, hours-long recordings in bounded memory. Imports no stage."""

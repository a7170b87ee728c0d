"""What users hand in, read without trusting it: input layouts (and ``SourceConfig``, one input
folder), every file accounted for, ids that are never paths, hours-long recordings in bounded
memory. May import kani_adapt's contracts and configuration; imports no stage."""

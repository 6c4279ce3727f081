"""The transaction trace of a simulation (:mod:`.record`), the driver's spans in it
(:mod:`.spans`), and what is made of it: the timeline picture (:mod:`.timeline`) and the
HTML report (:mod:`.report`)."""

"""The step tabs of the stage pages too long for one file: one module per page, each drawing a frozen result of
`vitviz` that its page computed once."""

"""Text alternatives computed from the data a picture or chart draws (WCAG 2.1 success criterion 1.1.1): what a
sighted student reads off it, with the numbers, in the run's language. One module per stage, shared wording in
`common`. No Streamlit here: the pages pass these sentences as `alt` to `ui.common.picture` / `ui.common.chart`."""

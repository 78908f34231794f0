"""The app's one stylesheet."""

# Our own constant stylesheet (never model output): reasoning reads as quieter text beside the answer,
# like the DeepSeek app. Expander keys become CSS classes `st-key-<key>`.
REASONING_STYLE = """<style>
[class*="st-key-live-"] [data-testid="stExpanderDetails"],
[class*="st-key-think-"] [data-testid="stExpanderDetails"] {
  color: #5f6368; border-left: 2px solid #e3e3e3; padding-left: 0.9rem; font-size: 0.95rem;
}
</style>"""

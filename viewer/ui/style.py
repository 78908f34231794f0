"""The app's one stylesheet."""

# Our own constant stylesheet (never model output): reasoning reads as quieter text beside the answer,
# like the DeepSeek app. Expander keys become CSS classes `st-key-<key>`. Colours are translucent greys
# so that the same rules read well in the light and the dark theme.
REASONING_STYLE = """<style>
[class*="st-key-live-"] [data-testid="stExpanderDetails"],
[class*="st-key-think-"] [data-testid="stExpanderDetails"] {
  opacity: 0.78; border-left: 2px solid rgba(128, 128, 128, 0.35); padding-left: 0.9rem; font-size: 0.95rem;
}
/* "Jump to answer" and "Fold reasoning" scroll these to the top, clear of the app's header bar. */
[class*="st-key-answer-"], [class*="st-key-think-"] { scroll-margin-top: 4rem; }
/* Controls that act on the page and show nothing (viewer.ui.clientside). */
[class*="st-key-follow-"], [class*="st-key-arrive-"] { display: none; }
/* The user's bubble stands apart from the assistant's, in light and dark themes alike. */
[data-testid="stChatMessage"]:has([data-testid="stChatMessageAvatarUser"]) {
  background: rgba(128, 128, 128, 0.10); border-radius: 0.75rem;
}
/* Text that may yet turn out to be reasoning (a pre-filled opener) reads like reasoning until it is decided. */
[class*="st-key-provisional-"] [data-testid="stMarkdownContainer"] { opacity: 0.78; }
/* An ordered list that starts past 1 (a trace that opens with "391. Check small primes.") gets room for a
   marker of up to five characters, so its number never hangs over the avatar or a section's border. */
[data-testid="stChatMessage"] ol[start] > li { margin-left: 2.9em; }
/* Wide enough for "Reasoning in later turns (this model)" and the endpoint's URL. */
section[data-testid="stSidebar"] { min-width: 20rem; }
</style>"""

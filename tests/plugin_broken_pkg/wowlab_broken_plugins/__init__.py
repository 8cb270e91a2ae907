"""Faulty plugins, one per way a plugin can be broken. The test suite installs this package
next to working plugins and checks that ``wowlab plugins`` lists each as broken or unavailable
with its reason, and that everything else keeps working."""

pytest_plugins = ["patra.testing"]

"""Lambda APIs the emulator serves itself, because moto 5.2.5 lacks them or gets them wrong.

`router.LambdaExtras` is what the emulator's front asks first: provisioned concurrency,
recursion, function URLs per qualifier and resource-based policies per qualifier. Their state
lives in the emulator's process, keyed by account, region, function and qualifier, and is
valid only while the function (and the alias or version) it was made for exists in moto.
"""

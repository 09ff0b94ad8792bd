# A module without resources or providers: the control checks in controls.tftest.hcl
# run against it, reading the applied settings from the `apply` run's outputs, so that
# each check costs no AWS call and no provider start.

"""Services: the in-cluster platform services (autoscaling, GPU, mesh, ingress, secrets,
observability, backups). Each may use ``components.foundation``, never the reverse."""

# Firestore (Native mode) and the composite indexes the order store's queries need (shared/infra/store.py).
#
# FirestoreOrderStore.list filters by equality on any of status, strategy_id, signal_id, symbol, exchange,
# parent_id, optionally by a created_at range, and always orders by created_at desc, then order_id desc. Firestore
# serves an equality filter plus that order from an index (field, created_at desc, order_id desc), and merges
# such indexes for several equality filters; a query without filters needs (created_at desc, order_id desc).
# The sweep's queries (pending_events > 0; status in [...]) use single-field indexes, which exist by default, as
# does the orphan search's (venue_keys array-contains-any). A reconcile task's page (exchange ==, status in [...],
# a document-id range, ordered by document id) has its composite index below.
# The emulator does not enforce indexes: production rejects a query whose index is missing.

resource "google_firestore_database" "this" {
  name                              = "(default)"
  location_id                       = coalesce(var.firestore_location, var.region)
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  # `terraform destroy` leaves the database and its orders in place (delete it with gcloud if you mean it).
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.enabled]
}

locals {
  order_list_equality_fields = toset(["status", "strategy_id", "signal_id", "symbol", "exchange", "parent_id"])
}

resource "google_firestore_index" "orders_by_field" {
  for_each   = local.order_list_equality_fields
  database   = google_firestore_database.this.name
  collection = "orders"

  fields {
    field_path = each.value
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
  fields {
    field_path = "order_id"
    order      = "DESCENDING"
  }
}

resource "google_firestore_index" "orders_newest_first" {
  database   = google_firestore_database.this.name
  collection = "orders"

  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
  fields {
    field_path = "order_id"
    order      = "DESCENDING"
  }
}

resource "google_firestore_index" "orders_open_by_venue" {
  database   = google_firestore_database.this.name
  collection = "orders"

  fields {
    field_path = "exchange"
    order      = "ASCENDING"
  }
  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }
}

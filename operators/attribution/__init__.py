"""Campaign attribution: touchpoints from UTM-tagged visits, journeys per shopper and member, credit models."""
